"""Metrics across worker processes (``PROMETHEUS_MULTIPROC_DIR``), and without.

The multiprocess cases run real child interpreters with the variable in their own environment
only: prometheus_client picks its value class at import, so the pytest process must never see
the variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import MULTIPROC_DIR_ENV, Metrics

ROOT = Path(__file__).resolve().parents[2]

# argv: suggestions to count, request seconds, bundle(s) to set (comma-separated), "close" or not
WORKER = textwrap.dedent(
    """
    import sys
    from server.metrics import Metrics

    metrics = Metrics()
    assert metrics.multiprocess
    metrics.suggestions_served.inc(int(sys.argv[1]))
    metrics.observe_request("POST", "/v1/suggest", 200, float(sys.argv[2]))
    metrics.feedback.labels(outcome="accepted").inc()
    for bundle in sys.argv[3].split(","):
        metrics.set_bundle(bundle)
    if sys.argv[4] == "close":
        metrics.close()
    """
)

RENDER = textwrap.dedent(
    """
    import sys
    from server.metrics import Metrics

    sys.stdout.write(Metrics().render().decode())
    """
)


def _env(multiproc_dir: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() != MULTIPROC_DIR_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if multiproc_dir is not None:
        env[MULTIPROC_DIR_ENV] = str(multiproc_dir)
    return env


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    # -W error: clearing or removing labels in multiprocess mode only warns; make that fail.
    done = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(autouse=True)
def _no_multiproc_env_here() -> None:
    assert MULTIPROC_DIR_ENV not in os.environ, "the pytest process must stay single-process"


def test_render_sums_every_process(tmp_path: Path) -> None:
    env = _env(tmp_path)
    # One worker that shut down cleanly, one still "alive" (never marked dead).
    _python(WORKER, "3", "0.02", "a", "close", env=env)
    _python(WORKER, "4", "0.2", "old,b", "keep", env=env)

    samples = _samples(_python(RENDER, env=env))
    assert samples[("suggestions_served_total", ())] == 7
    assert samples[("feedback_total", (("outcome", "accepted"),))] == 2
    assert samples[("feedback_total", (("outcome", "rejected"),))] == 0
    request = (("method", "POST"), ("route", "/v1/suggest"), ("status", "200"))
    assert samples[("http_request_duration_seconds_count", request)] == 2
    assert samples[("http_request_duration_seconds_sum", request)] == pytest.approx(0.22)
    for le, count in (("0.005", 0), ("0.025", 1), ("0.25", 2), ("+Inf", 2)):
        bucket = tuple(sorted((*request, ("le", le))))
        assert samples[("http_request_duration_seconds_bucket", bucket)] == count, le
    # bundle_info: the closed worker's "a" is gone; the live one serves "b", no longer "old".
    bundles = {
        dict(labels)["bundle"]: value
        for (name, labels), value in samples.items()
        if name == "bundle_info"
    }
    assert bundles == {"b": 1, "old": 0}


def test_render_in_any_process_sees_the_others(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _python(WORKER, "5", "0.01", "a", "keep", env=env)
    # The rendering process counts too, whichever worker answers the scrape.
    both = RENDER.replace(
        "sys.stdout.write(Metrics().render().decode())",
        "m = Metrics(); m.suggestions_served.inc(2); sys.stdout.write(m.render().decode())",
    )
    samples = _samples(_python(both, env=env))
    assert samples[("suggestions_served_total", ())] == 7


def test_env_set_after_import_is_refused(tmp_path: Path) -> None:
    late = textwrap.dedent(
        f"""
        import os
        import prometheus_client
        os.environ[{MULTIPROC_DIR_ENV!r}] = {str(tmp_path)!r}
        from server.metrics import Metrics
        try:
            Metrics()
        except RuntimeError as exc:
            print("refused:", exc)
        """
    )
    assert "refused:" in _python(late, env=_env(None))


def test_single_process_keeps_per_app_values() -> None:
    first, second = Metrics(), Metrics()
    assert not first.multiprocess and not second.multiprocess
    first.suggestions_served.inc(3)
    second.suggestions_served.inc(5)
    first.observe_request("GET", "/healthz", 200, 0.001)
    first.set_bundle("a")
    first.set_bundle("b")

    one, two = _samples(first.render().decode()), _samples(second.render().decode())
    assert one[("suggestions_served_total", ())] == 3
    assert two[("suggestions_served_total", ())] == 5
    request = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert one[("http_request_duration_seconds_count", request)] == 1
    assert ("http_request_duration_seconds_count", request) not in two
    assert [labels for name, labels in one if name == "bundle_info"] == [(("bundle", "b"),)]
    first.close()  # a no-op here
    assert _samples(first.render().decode()) == one
