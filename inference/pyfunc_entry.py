"""MLflow "models from code" entry point: logged with the model, run when it loads."""

import mlflow

from inference.pyfunc import AllystancePyfunc

mlflow.models.set_model(AllystancePyfunc())
