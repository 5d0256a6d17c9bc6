"""optuna-dashboard shows what a run did: the run's study note and figures, the note of each LLM
trial (written by ``run``), the ``dashboard`` command, and, in a real headless Chromium, the trial
page with the note, the ``llm_*`` user attributes and the rollout artifacts.

The trial note itself is tested in tests/integrations/test_dashboard_note.py."""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import queue
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import Any
import urllib.request

import optuna
import pytest

from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler.app._dashboard_server import DashboardServer
from optuna_llm_sampler.app._run_note import BEST_SO_FAR_ID
from optuna_llm_sampler.app._run_note import PROPOSAL_MAP_ID
from optuna_llm_sampler.app._run_note import publish_run
from optuna_llm_sampler.app._run_note import save_study_figures
from optuna_llm_sampler.app.cli import main
from optuna_llm_sampler.providers import ScriptedClient
from tests._notes import answer_near_the_optimum
from tests._notes import note_of
from tests._notes import quadratic
from tests._notes import REASONING
from tests._process import stop_process
from tests.providers.stub_server import StubLLMServer


optuna_dashboard = pytest.importorskip("optuna_dashboard")

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
N_STARTUP = 10
N_TRIALS = 16
# One LLM trial whose reasoning tries to make the page load a remote image (the host does not
# exist: the browser test fails on any request that leaves the machine).
HOSTILE_TRIAL = N_TRIALS - 2
REMOTE = "http://remote.invalid/pixel.png"
HOSTILE_REASONING = f"{REASONING} <img src={REMOTE}> ![]({REMOTE})"


def figure_ids(study: optuna.Study) -> set[str]:
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    return set(get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id)))


# --------------------------------------------------------------------------- figures


def test_figures_mark_llm_proposals_fallbacks_and_startup_trials_apart() -> None:
    client = ScriptedClient(
        ["a: 1, b: 5\nClose to the best.", "not an answer", "a: 2, b: 4\nNearby.", "no"],
        respond=answer_near_the_optimum(),
    )
    sampler = LLMSampler(model=client, n_startup_trials=3, max_retries=0, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(quadratic, n_trials=8)
    assert sum("llm_fallback" in t.user_attrs for t in study.trials) == 2
    assert save_study_figures(study, env_id="Quadratic") == [BEST_SO_FAR_ID, PROPOSAL_MAP_ID]
    assert figure_ids(study) == {BEST_SO_FAR_ID, PROPOSAL_MAP_ID}
    attrs = study._storage.get_study_system_attrs(study._study_id)
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    figures = {k: json.loads(v) for k, v in get_plotly_graph_objects(attrs).items()}
    by_name = {trace["name"]: trace for trace in figures[PROPOSAL_MAP_ID]["data"]}
    assert set(by_name) == {"LLM proposal", "fallback", "startup / other"}
    assert len(by_name["fallback"]["x"]) == 2 and by_name["fallback"]["marker"]["symbol"] == "x"
    assert len(by_name["startup / other"]["x"]) == 3
    curve = {trace["name"]: trace for trace in figures[BEST_SO_FAR_ID]["data"]}
    best = curve["best so far"]["y"]
    assert best == sorted(best) and best[-1] == study.best_value
    # Saving again overwrites the same two figures.
    save_study_figures(study)
    assert figure_ids(study) == {BEST_SO_FAR_ID, PROPOSAL_MAP_ID}


def test_without_optuna_dashboard_no_figures_are_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + t.suggest_float("b", 0, 1), 3)
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    assert save_study_figures(study) == []
    assert publish_run(study, None, None) is False  # type: ignore[arg-type]  # no note to build


def test_without_optuna_dashboard_run_still_writes_its_study_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The study note needs nothing optional: it is there when optuna-dashboard comes later."""
    from optuna_llm_sampler import llm_usage
    from optuna_llm_sampler.app import RunConfig
    from optuna_llm_sampler.app import RunSummary

    study = optuna.create_study(direction="maximize")
    study.optimize(quadratic, n_trials=3)
    study.set_user_attr("params", "a,b")
    url = "postgresql+psycopg2://me:hunter2@db/x"
    config = RunConfig(storage=url, base_url="http://u:pw@127.0.0.1:1/v1?api_key=k3y")
    summary = RunSummary(
        study_name="s",
        storage=url,
        n_trials=3,
        best_value=study.best_value,
        best_params=study.best_params,
        rescored_mean=None,
        rescored_std=None,
        usage=llm_usage(study),
        model="m",
        artifacts=None,
    )
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    assert publish_run(study, summary, config) is True
    monkeypatch.undo()
    note = note_of(study)
    assert note.startswith("### s\n") and "| sampler | LLM, model `m` at http://u:***@" in note
    assert "hunter2" not in note and "pw@" not in note and "k3y" not in note
    assert "--storage postgresql+psycopg2://me:***@db/x" in note
    assert figure_ids(study) == set()  # figures need optuna-dashboard and plotly


def test_no_map_unless_the_study_has_exactly_the_two_parameters() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: sum(t.suggest_float(n, 0, 1) for n in "abc"), n_trials=3)
    assert save_study_figures(study) == [BEST_SO_FAR_ID]
    assert save_study_figures(optuna.create_study()) == []  # nothing complete yet


# --------------------------------------------------------------------------- the run command


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ``optuna-llm-sampler run`` through the stub OpenAI server, with artifacts."""
    folder = tmp_path_factory.mktemp("run")
    rng = random.Random(0)

    def respond(request: dict[str, Any]) -> str:
        a, b = rng.uniform(-1, 0.3), rng.uniform(3, 7)
        hostile = f"iteration {HOSTILE_TRIAL}." in request["messages"][-1]["content"]
        reasoning = HOSTILE_REASONING if hostile else REASONING
        return json.dumps({"a": round(a, 4), "b": round(b, 4), "reasoning": reasoning})

    argv = [
        "run",
        "--model",
        "stub-model",
        "--n-trials",
        str(N_TRIALS),
        "--n-startup-trials",
        str(N_STARTUP),
        "--n-eval-episodes",
        "2",
        "--no-progress",
        "--study-name",
        "llm-demo",
        "--storage",
        f"sqlite:///{folder / 'study.db'}",
        "--artifacts",
        str(folder / "art"),
    ]
    with pytest.MonkeyPatch.context() as mp, StubLLMServer(responder=respond) as server:
        for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
            mp.delenv(name, raising=False)
        assert main([*argv, "--base-url", server.openai_base_url]) == 0
    yield folder


def _load(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="llm-demo", storage=f"sqlite:///{folder / 'study.db'}")


def test_run_writes_the_study_note_and_figures(run_dir: Path) -> None:
    study = _load(run_dir)
    note = note_of(study)
    assert note.startswith("### llm-demo\n")
    for text in (
        "| environment | `MountainCarContinuous-v0` |",
        "| sampler | LLM, model `stub-model` at http://127.0.0.1:",
        "| prompt template | default (ProPS tutorial) |",
        "| parameters | a, b |",
        f"| budget | {N_TRIALS} trials, {N_STARTUP} random first, 2 episodes of ≤ 1000 steps",
        "| LLM trials | 6 proposals, 0 fallbacks (100% the LLM's own) |",
        "| best re-scored | **",
        "on 100 fresh episodes |",
        f"optuna-llm-sampler dashboard --storage sqlite:///{run_dir / 'study.db'} "
        f"--artifacts {run_dir / 'art'}",
    ):
        assert text in note
    assert figure_ids(study) == {BEST_SO_FAR_ID, PROPOSAL_MAP_ID}
    llm_trials = [t for t in study.trials if "llm_model" in t.user_attrs]
    assert len(llm_trials) == N_TRIALS - N_STARTUP
    assert all(REASONING in note_of(study, t) for t in llm_trials)
    assert study.trials[HOSTILE_TRIAL].user_attrs["llm_reasoning"] == HOSTILE_REASONING
    assert REMOTE in note_of(study, study.trials[HOSTILE_TRIAL])  # shown, as text


def test_the_readme_dashboard_example_works_after_the_first_command(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's dashboard command opens what its first command (``run`` with its default
    storage, no other flag that changes where things go) leaves behind."""
    import shlex

    from optuna_llm_sampler.app.cli import build_parser

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = re.search(r"optuna-llm-sampler run [^\n`]*", readme)
    assert first is not None
    run_args = shlex.split(first.group(0))[1:]
    assert "--storage" not in run_args and "--artifacts" not in run_args
    section = readme.split("## Watch it in optuna-dashboard", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"^optuna-llm-sampler dashboard .*$", section, re.MULTILINE)
    assert shown
    # The first command with a quick sampler, so the test does not wait for an LLM.
    assert main([*run_args[:1], "--sampler", "random", "--n-trials", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for command in shown:
        args = build_parser().parse_args([*shlex.split(command)[1:], "--port", "0"])
        with DashboardServer(args.storage, artifacts=args.artifacts, port=0) as server:
            assert server.port > 0
        assert f"watch it: {command}" in printed


def test_dashboard_command_rejects_a_missing_storage_or_artifacts_folder(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    assert main(["dashboard", "--storage", missing, "--port", "0"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()
    storage = f"sqlite:///{run_dir / 'study.db'}"
    args = ["dashboard", "--storage", storage, "--artifacts", str(tmp_path / "x"), "--port", "0"]
    assert main(args) == 2
    assert "is not a folder" in capsys.readouterr().err
    with DashboardServer(storage, port=0) as busy:
        assert main(["dashboard", "--storage", storage, "--port", str(busy.port)]) == 2
        assert f"cannot listen on 127.0.0.1:{busy.port}" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["65536", "70000", "-1", "99999999999999999999"])
def test_dashboard_command_refuses_a_port_out_of_range(
    run_dir: Path, port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{run_dir / 'study.db'}"
    assert main(["dashboard", "--storage", storage, "--port", port]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port must be 0 (a free port) to 65535" in err
    with pytest.raises(ValueError, match="port must be 0"):
        DashboardServer(storage, port=int(port))


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_dashboard_command_refuses_a_storage_file_that_does_not_exist(
    in_tmp: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serving a missing file would create an empty storage and show nothing: an error."""
    url = "journal:runs/none.log" if kind == "journal" else "sqlite:///runs/none.db"
    (in_tmp / "runs").mkdir()
    assert main(["dashboard", "--storage", url, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "Traceback" not in err
    assert list((in_tmp / "runs").iterdir()) == []


def test_dashboard_server_serves_the_study_with_its_artifacts(run_dir: Path) -> None:
    server = DashboardServer(
        f"sqlite:///{run_dir / 'study.db'}", artifacts=str(run_dir / "art"), port=0
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/dashboard"
        base = server.url.removesuffix("/dashboard")
        meta = json.load(urllib.request.urlopen(f"{base}/api/meta", timeout=30))
        assert meta["artifact_is_available"] is True
        study_id = _load(run_dir)._study_id
        detail = json.load(urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=30))
        assert detail["name"] == "llm-demo"
        last = detail["trials"][-1]
        assert {a["filename"] for a in last["artifacts"]} == {
            f"rollout_trial_{N_TRIALS - 1}.csv",
            f"policy_trial_{N_TRIALS - 1}.json",
        }
    finally:
        server.shutdown()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- in a real browser


def _start_dashboard_command(run_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """``optuna-llm-sampler dashboard`` in a subprocess on a free port; returns it and its URL."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optuna_llm_sampler.app.cli",
            "dashboard",
            "--storage",
            f"sqlite:///{run_dir / 'study.db'}",
            "--artifacts",
            str(run_dir / "art"),
            "--port",
            "0",
        ],
        cwd=run_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("optuna-dashboard at "):
            url = line.split()[2]
            break
    else:
        proc.kill()
        pytest.fail(f"the dashboard command printed no URL: {''.join(seen)}")
    if proc.poll() is not None:
        pytest.fail(f"the dashboard command exited: {''.join(seen)}")
    # It printed the URL once listening; wait until it answers.
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
)
def test_the_trial_page_shows_the_note_user_attrs_and_artifacts_in_chromium(
    run_dir: Path, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    study_id = _load(run_dir)._study_id
    number = N_TRIALS - 1  # an LLM trial with the whole history in its prompt
    proc, url = _start_dashboard_command(run_dir)
    try:
        with sync_api.sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                viewport={"width": 1280, "height": 800},
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            left: list[str] = []

            def local_only(route: Any) -> None:
                if route.request.url.startswith(url.split("/dashboard")[0]):
                    route.continue_()
                else:  # nothing may leave the machine, least of all what a model names
                    left.append(route.request.url)
                    route.abort()

            context.route("**/*", local_only)
            try:
                page = context.new_page()
                page.set_default_timeout(30_000)
                # A trial whose reasoning holds an <img> and a Markdown image: shown as text.
                page.goto(f"{url}/studies/{study_id}/trials?numbers={HOSTILE_TRIAL}")
                page.get_by_text(f"Trial {HOSTILE_TRIAL}: proposed by").wait_for()
                quote = page.locator("blockquote", has_text=REASONING)
                quote.wait_for()
                assert f"<img src={REMOTE}>" in quote.inner_text()
                assert f"![]({REMOTE})" in quote.inner_text()
                page.wait_for_load_state("networkidle")
                assert page.locator('img[src*="remote.invalid"]').count() == 0
                assert left == []

                page.goto(f"{url}/studies/{study_id}/trials?numbers={number}")
                page.get_by_text(f"Trial {number} (trial_id=").wait_for()
                # The note: rendered Markdown that only the note holds.
                page.get_by_text(f"Trial {number}: proposed by").wait_for()
                page.get_by_text(f"Now you are at iteration {number}.").wait_for()
                assert page.get_by_text("Answer 1:").count() == 1
                assert page.locator("blockquote", has_text=REASONING).count() == 1
                assert page.locator("table", has_text="a").count() == 1
                # The short user attributes (shown as "key value").
                page.get_by_text(f"llm_reasoning {REASONING}", exact=True).wait_for()
                page.get_by_text("llm_model stub-model", exact=True).wait_for()
                for name in ("llm_prompt_tokens", "llm_completion_tokens", "llm_attempts"):
                    page.get_by_text(re.compile(rf"^{name} \d+$")).wait_for()
                # The rollout artifacts.
                page.get_by_text(f"rollout_trial_{number}.csv").wait_for()
                page.get_by_text(f"policy_trial_{number}.json").wait_for()
                page.wait_for_load_state("networkidle")
                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot))
                target = os.environ.get("SAVE_DASHBOARD_SCREENSHOT")
                if target:
                    path = Path(target) if Path(target).is_absolute() else REPO / target
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(shot, path)

                # The study page: the run's figures; the note page: the run's study note.
                page.goto(f"{url}/studies/{study_id}")
                page.get_by_text("Proposals over (a, b)").first.wait_for()
                page.get_by_text("Best so far on MountainCarContinuous-v0").first.wait_for()
                page.goto(f"{url}/studies/{study_id}/note")
                page.get_by_text("best re-scored").wait_for()
                assert left == []
            finally:
                context.close()
    finally:
        stop_process(proc, timeout=10)
    assert shot.stat().st_size > 10_000
