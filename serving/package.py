"""Package the model and the service into a Bento: `python -m serving.package [--bundle DIR] [--alias A]`.

1. Finds the model as the server would (--bundle / SIGNALS_BUNDLE, else SIGNALS_MODEL_NAME@alias from
   the MLflow registry at MLFLOW_TRACKING_URI).
2. Copies the bundle into BentoML's model store as `session-signals-bundle`, its identity (registered
   name, version, run id) as metadata, so that the Bento answers with it.
3. Builds bentofile.yaml into a Bento, which carries that model; prints its tag.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def store_model(bundle: Path, metadata: dict[str, str | None]) -> str:
    """Copy a bundle folder into BentoML's model store; returns the model's tag."""
    import bentoml

    from serving.model_source import BENTO_MODEL_NAME

    labels = {"registered_version": metadata["version"] or "none"}
    with bentoml.models.create(BENTO_MODEL_NAME, metadata=metadata, labels=labels) as model:
        shutil.copytree(bundle, model.path, dirs_exist_ok=True)
    return str(model.tag)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="package this bundle folder instead of a registered model")
    parser.add_argument("--alias", help="registry alias to package (default: SIGNALS_MODEL_ALIAS or champion)")
    args = parser.parse_args(argv)

    import bentoml

    from serving.model_source import located_model
    from serving.settings import ServingSettings

    settings = ServingSettings.from_env()
    if args.bundle:
        settings = dataclasses.replace(settings, bundle=args.bundle)
    if args.alias:
        settings = dataclasses.replace(settings, model_alias=args.alias)
    with located_model(settings) as (bundle, identity):
        model_tag = store_model(bundle, identity.model_dump())
    print(f"model {identity.name} v{identity.version} stored as {model_tag}")
    bento = bentoml.bentos.build_bentofile(str(ROOT / "bentofile.yaml"), build_ctx=str(ROOT))
    print(f"built {bento.tag}: containerize with `bentoml containerize {bento.tag}` (serving/README.md)")


if __name__ == "__main__":
    main()
