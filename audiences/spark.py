"""Every customer's signals on Spark, for shops whose customers do not fit one machine: the registered
pyfunc model (registry/logged_model.py) scores one group of users at a time on the executors.

Events are grouped by a hash of user_id (`applyInPandas`), so each group holds every event of its users and
each user is scored once, by `model.predict(events, params={"as_of": ...})`: the code `signals score` and
/predict run, with the same answers (tests/test_spark_score.py). The model is fetched once on the driver and
shipped to the executors with the job (`SparkContext.addArchive`); each Python worker loads it once. Output: Parquet,
one row per customer with an event up to as_of, the model's columns (`OUTPUT_COLUMNS`), written by Spark's
committer (a `_SUCCESS` marker when the whole job finished). The audience files, RFM and lookalikes, which
compare customers with each other, stay `signals score`'s.

    python -m audiences.spark EVENTS --out DIR [--as-of TIME] [--model champion] [--master local[*]]
    spark-submit --master yarn ... "$(python -c 'import audiences.spark as s; print(s.__file__)')" EVENTS --out DIR
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from audiences.event_table import parse_as_of
from events.errors import UserFacingError
from events.schema import CANONICAL_COLUMNS, EVENTS_FILE
from registry.logged_model import OUTPUT_COLUMNS

log = logging.getLogger(__name__)

SPARK_TYPES = {"user_id": "string", "purchase_intent": "double", "churn_risk": "double",
               "top_products": "array<string>", "top_categories": "array<string>", "top_brands": "array<string>",
               "segments": "array<string>", "days_since_last_event": "double", "model_name": "string",
               "model_version": "string", "model_run_id": "string"}
SCHEMA = ", ".join(f"{column} {SPARK_TYPES[column]}" for column in OUTPUT_COLUMNS)  # the pyfunc model's output
GROUP = "_user_group"
EVENTS_PER_GROUP = 500_000  # a group is one pandas frame in a Python worker: about 0.3 GB at this size
_loaded: dict[str, object] = {}  # per Python worker: model folder -> loaded pyfunc model


def spark_session(master: str | None = None, app: str = "signals-score"):
    """A session whose timestamps are UTC (the canonical table's); quiet; local workers run this Python."""
    from pyspark.sql import SparkSession

    # pandas 3 is ahead of what PySpark 4.3 declares; the scores are tested equal to signals score's under it.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    if master is None or master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # a cluster sets its own (spark-submit --conf)
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    spark = (builder.config("spark.sql.session.timeZone", "UTC").config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # a line per connection otherwise
    return spark


def read_events(spark, path: str):
    """A canonical table (a `signals load`/`simulate` folder, a Parquet file or a folder of Parquet parts on
    any file system Spark reads), or a clear error naming the missing columns."""
    local = Path(path)
    if local.is_dir() and (local / EVENTS_FILE).is_file():
        path = str(local / EVENTS_FILE)  # not the folder: it also holds rejected.parquet and the oracles
    events = spark.read.parquet(path)
    missing = [c for c in CANONICAL_COLUMNS if c not in events.columns]
    if missing:
        raise UserFacingError(f"{path}: not a canonical events table: missing column(s) {', '.join(missing)}")
    return events.select(*CANONICAL_COLUMNS)


def fetch_model(model: str, model_name: str, tracking_uri: str, dst: Path) -> tuple[Path, dict]:
    """The registered version's pyfunc model folder (alias or version number), or a local MLflow model
    folder; and who it is (name, version, run_id: what every row answers with)."""
    folder = Path(model)
    if (folder / "MLmodel").is_file():
        return folder, {"name": folder.resolve().name, "version": None, "run_id": None}
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow.exceptions import MlflowException

    from registry import registered_version, resolve_uri

    mlflow.set_tracking_uri(resolve_uri(tracking_uri))
    client = mlflow.MlflowClient()
    try:
        version = registered_version(client, model_name, model)
    except MlflowException as err:
        raise UserFacingError(f"--model {model}: not found in the registry ({err.message}); give an alias "
                              "(champion, challenger), a version number or an MLflow model folder") from None
    if not version.source.startswith("models:/"):
        raise UserFacingError(f"--model {model}: {model_name} v{version.version} was registered before the pyfunc "
                              "model (a bundle only): score it with `signals score`, or register it again")
    path = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(dst))
    return Path(path), {"name": model_name, "version": str(version.version), "run_id": version.run_id}


def score_events(spark, events, model_dir: Path, identity: dict, as_of: pd.Timestamp, groups: int, staging: Path):
    """A Spark DataFrame of every user's signals (SCHEMA), lazily: one pyfunc call per group of users.
    The model travels to the executors as a zip archive written under `staging` (keep it until the job ends)."""
    import pyspark.sql.functions as F

    # A name of its own: Spark refuses a second file of the same name with other contents in one session.
    archive = Path(shutil.make_archive(str(Path(tempfile.mkdtemp(dir=staging)) / "signals-model"), "zip", model_dir))
    name = f"signals-model-{archive.parent.name}.zip"
    archive = archive.rename(archive.with_name(name))
    spark.sparkContext.addArchive(str(archive))
    params = {"as_of": as_of.isoformat()}

    def score_group(frame: pd.DataFrame) -> pd.DataFrame:  # every event of some users; ts naive UTC
        from pyspark import SparkFiles

        return _model(SparkFiles.get(name), identity).predict(frame.drop(columns=GROUP), params=params)

    grouped = events.withColumn(GROUP, F.pmod(F.hash("user_id"), F.lit(groups)))
    return grouped.groupBy(GROUP).applyInPandas(score_group, SCHEMA)


def _model(path: str, identity: dict):
    if path not in _loaded:
        import mlflow

        _loaded[path] = mlflow.pyfunc.load_model(path, model_config=identity)
    return _loaded[path]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m audiences.spark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", metavar="EVENTS", help="canonical events: a folder from `signals load`/`simulate`, "
                   "a Parquet file or a folder of Parquet parts (hdfs://, s3a://, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="output Parquet folder (replaced)")
    p.add_argument("--as-of", metavar="TIME", help="the scoring moment, ISO 8601 (naive = UTC); default: the last event")
    p.add_argument("--model", default="champion", help="registry alias, version number, or an MLflow model folder")
    p.add_argument("--model-name", default="session-signals")
    p.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db")
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--groups", type=int, help=f"user groups (default: one per {EVENTS_PER_GROUP:,} events, at least "
                   "the default parallelism)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    import pyspark.sql.functions as F

    started = time.perf_counter()
    spark = spark_session(args.master or (None if "SPARK_HOME" in os.environ else "local[*]"))
    events = read_events(spark, args.events)
    rows, first, last, users = events.agg(F.count("*"), F.min("ts"), F.max("ts"), F.countDistinct("user_id")).first()
    if not rows:
        raise UserFacingError(f"{args.events}: no events")
    as_of = parse_as_of(args.as_of, pd.Timestamp(last, tz="UTC"))
    if as_of < pd.Timestamp(first, tz="UTC"):
        raise UserFacingError(f"--as-of {as_of.isoformat()} is before the data: the first event is at {first}")
    groups = args.groups or max(spark.sparkContext.defaultParallelism, math.ceil(rows / EVENTS_PER_GROUP))
    with tempfile.TemporaryDirectory(prefix="signals-spark-") as tmp:
        model_dir, identity = fetch_model(args.model, args.model_name, args.tracking_uri, Path(tmp) / "model")
        log.info("scoring %d events of %d customers as of %s with %s v%s in %d user groups", rows, users,
                 as_of.isoformat(), identity["name"], identity["version"], groups)
        (Path(tmp) / "staging").mkdir()
        scores = score_events(spark, events, model_dir, identity, as_of, groups, Path(tmp) / "staging")
        scores.write.mode("overwrite").parquet(args.out)
    scored = spark.read.parquet(args.out).count()
    seconds = time.perf_counter() - started
    print(f"scored {scored} customers as of {as_of.isoformat()} ({scored / seconds:.0f}/s; {users - scored} have no "
          f"events before as-of) with {identity['name']} v{identity['version']} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
