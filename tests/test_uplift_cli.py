"""`signals uplift` refuses a bad choice at once, naming it, before reading data or writing anything."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main


@pytest.mark.parametrize(("args", "key"), [
    (["select_on=auuc"], "select_on"),
    (["--alias", "champion"], "--alias champion"),
])
def test_signals_uplift_refuses_a_bad_choice_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                             args: list[str], key: str) -> None:
    options = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    assert main(["uplift", str(tmp_path / "nowhere"), *overrides, "--out", str(tmp_path / "out"), *options]) == 2
    assert key in capsys.readouterr().err and not (tmp_path / "out").exists()
