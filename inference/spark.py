"""Scoring paragraph tables on Apache Spark with a logged allystance model.

``score_dataframe`` adds the local ``allystance predict`` output fields to a Spark DataFrame
of paragraphs, through ``mlflow.pyfunc.spark_udf`` (the model is loaded once per executor
Python worker). The same code runs in ``local[*]`` mode and on a cluster::

    from pyspark.sql import SparkSession
    from inference.spark import score_dataframe

    spark = SparkSession.builder.getOrCreate()
    paragraphs = spark.read.parquet("s3://archive/paragraphs/")
    score_dataframe(spark, paragraphs, "models:/allystance@champion").write.parquet("s3://archive/labels/")

Rows are taken as paragraphs as they are (as ``predict`` does for tables): ``id`` is the
row's id, else ``article_id:position``; ``position`` counts the rows of one article in input
order. Rows with no usable text (null, blank, over 100,000 characters) are left out.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from inference.predict import METADATA_FIELDS, OUTPUT_FIELDS, PredictSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_session(master: str = "local[*]", app_name: str = "allystance") -> SparkSession:
    """A Spark session whose Python workers run this interpreter (and so see its packages)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def score_dataframe(
    spark: SparkSession, paragraphs: DataFrame, model_uri: str, model_label: str | None = None
) -> DataFrame:
    """The paragraphs with the ``predict`` fields, scored by the MLflow model at ``model_uri``."""
    import mlflow.pyfunc
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)
    from pyspark.sql.types import ArrayType, DoubleType, MapType, StringType, StructField, StructType

    if "text" not in paragraphs.columns:
        raise ValueError(f"the DataFrame needs a 'text' column; it has {', '.join(paragraphs.columns)}")
    max_chars = PredictSettings().max_chars
    df = paragraphs.withColumn("text", F.regexp_replace(F.trim(F.col("text").cast("string")), r"\s+", " "))
    df = df.where(F.col("text").isNotNull() & (F.length("text") > 0) & (F.length("text") <= max_chars))

    order = F.monotonically_increasing_id()
    df = df.withColumn("_order", order)
    has_id, has_article = "id" in df.columns, "article_id" in df.columns
    article = (
        F.coalesce(F.col("article_id").cast("string"), F.col("id").cast("string"))
        if has_article
        else (F.col("id").cast("string") if has_id else F.concat(F.lit("row-"), F.col("_order").cast("string")))
    )
    df = df.withColumn("_article", article)
    df = df.withColumn("position", F.row_number().over(Window.partitionBy("_article").orderBy("_order")) - 1)
    row_id = F.concat_ws(":", F.col("_article"), F.col("position").cast("string"))
    df = df.withColumn("id", F.coalesce(F.col("id").cast("string"), row_id) if has_id else row_id)
    df = df.withColumn("article_id", F.col("_article"))

    result_type = StructType(
        [
            StructField("topics", ArrayType(StringType())),
            StructField("stance", StringType()),
            StructField("topic_scores", StringType()),
            StructField("stance_scores", StringType()),
        ]
    )
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type, env_manager="local")
    scored = df.withColumn("_p", udf(F.struct("text")))
    scored = scored.select(
        "*",
        F.col("_p.topics").alias("topics"),
        F.from_json("_p.stance", MapType(StringType(), StringType())).alias("stance"),
        F.from_json("_p.topic_scores", MapType(StringType(), DoubleType())).alias("topic_scores"),
        F.from_json("_p.stance_scores", MapType(StringType(), MapType(StringType(), DoubleType()))).alias(
            "stance_scores"
        ),
        F.lit(model_label or model_uri).alias("model"),
    ).drop("_p")
    metadata = [c for c in METADATA_FIELDS if c in paragraphs.columns]
    columns = [*OUTPUT_FIELDS, *metadata]
    # No final sort: rows carry article_id and position, and a sort would cost a shuffle.
    return scored.select(*[F.col(c) for c in columns]).withColumn("position", F.col("position").cast("long"))


def score_parquet(
    input_path: str, output_path: str, model_uri: str, master: str = "local[*]", model_label: str | None = None
) -> int:
    """Score a Parquet file or folder of paragraphs and write the rows as Parquet; return the row count."""
    spark = spark_session(master)
    spark.sparkContext.setLogLevel("ERROR")
    scored = score_dataframe(spark, spark.read.parquet(input_path), model_uri, model_label).cache()
    count = scored.count()
    scored.write.mode("overwrite").parquet(output_path)
    return count
