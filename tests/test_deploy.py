"""Grading on your own cluster (``autograder/deploy/``): what can be checked without a container engine,
a registry or a cluster.

* ``Containerfile``: every instruction is a Dockerfile instruction, what it copies exists in the
  repository, ``setup.sh`` finds its ``requirements.txt`` (the CPU-PyTorch one) where the image puts
  it, a ``--from`` names an earlier stage, and the entry point is ``python -m autograder``.
* ``grade-job.yaml``: an Indexed ``batch/v1`` Job with 768Mi / 500m per pod; its pod's shell script is
  run here, for one index, with a ``python`` on ``PATH`` that records its arguments and then runs this
  environment's Python: the pod runs ``python -m autograder grade SUBMISSION --out RESULTS/STEM``,
  the command the grading tests and tools/benchmark_grading.py run, on the manifest's line
  ``JOB_COMPLETION_INDEX + 1``, and a real ``results.json`` comes out (about 10 s: the submission is
  a broken .zip, graded 0 without a sandbox).
* ``python -m autograder gradebook`` writes, from a folder of ``results.json``, the CSV that
  ``batch`` writes (:func:`autograder.report.write_gradebook`) for the same results.

Not run here: building the image (no container engine runs here; nothing is pulled or installed),
pushing it, and the Job on a cluster (the pod's privileges, the volume, the scheduling).
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from autograder.__main__ import main
from autograder.grader import GradingResult, TestResult
from autograder.report import write_gradebook, write_results
from autograder.rubric import DEFAULT_RUBRIC, load_rubric

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "autograder" / "deploy"
SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
#: What follows ``python`` in the grading command, before the submission: the pods and the tests run it.
GRADE = ["-m", "autograder", "grade"]
#: The Dockerfile reference's instructions (https://docs.docker.com/reference/dockerfile/).
INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


# --- the image definition -------------------------------------------------------------------------

def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, its arguments) of a Dockerfile: comment lines dropped (inside a continued
    instruction too, as Docker does), ``\\``-continued lines joined."""
    found, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not current):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1]
            continue
        word, _, rest = current.strip().partition(" ")
        found.append((word, rest.strip()))
        current = ""
    assert not current, f"the file ends inside an instruction: {current!r}"
    return found


def copies(steps: list[tuple[str, str]]) -> list[tuple[str | None, list[str], str]]:
    """Each COPY as (its --from stage or None, sources, destination)."""
    found = []
    for word, rest in steps:
        if word == "COPY":
            words = shlex.split(rest)
            options = [w for w in words if w.startswith("--")]
            stage = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
            *sources, destination = [w for w in words if not w.startswith("--")]
            found.append((stage, sources, destination))
    return found


@pytest.fixture(scope="module")
def containerfile() -> list[tuple[str, str]]:
    return instructions((DEPLOY / "Containerfile").read_text())


def test_containerfile_has_only_dockerfile_instructions(containerfile):
    assert containerfile and containerfile[0][0] == "FROM"
    unknown = [word for word, _ in containerfile if word not in INSTRUCTIONS]
    assert unknown == [], f"not Dockerfile instructions (or not in capitals): {unknown}"
    stages = []
    for word, rest in containerfile:
        if word == "FROM":
            words = rest.split()
            assert len(words) in (1, 3) and (len(words) == 1 or words[1].upper() == "AS"), rest
            stages.append(words[-1] if len(words) == 3 else None)
    for stage, _sources, _ in copies(containerfile):
        assert stage is None or stage in stages, f"COPY --from={stage}: no such stage before it"


def test_containerfile_copies_what_exists_and_what_setup_sh_needs(containerfile):
    placed = {}
    for stage, sources, destination in copies(containerfile):
        for source in sources:
            if stage is None:
                path = (ROOT / source).resolve()
                assert ROOT in path.parents and path.exists(), f"COPY {source}: not in the repository"
            if destination.endswith("/"):
                placed[destination + Path(source).name] = source
            else:
                assert len(sources) == 1, f"COPY of {sources} into {destination}: needs a folder ending in /"
                placed[destination] = source
    env = " ".join(rest for word, rest in containerfile if word == "ENV")
    assert "AUTOGRADER_ROOT=/autograder " in env + " "
    # setup.sh installs $AUTOGRADER_ROOT/source/requirements.txt and copies .../source/cs231n_style.
    setup = (ROOT / "autograder" / "gradescope" / "setup.sh").read_text()
    assert '"$SOURCE/requirements.txt"' in setup and 'SOURCE="$ROOT/source"' in setup
    requirements = placed["/autograder/source/requirements.txt"]
    assert requirements == "autograder/gradescope/requirements.txt"
    assert "download.pytorch.org/whl/cpu" in (ROOT / requirements).read_text()
    assert placed["/autograder/source/setup.sh"] == "autograder/gradescope/setup.sh"
    assert placed["/autograder/source/autograder"] == "autograder"
    assert placed["/autograder/source/cs231n_style"] == "cs231n_style"
    runs = [rest for word, rest in containerfile if word == "RUN"]
    assert any(rest.startswith("sh /autograder/source/setup.sh") for rest in runs)


def test_containerfile_runs_the_autograder_from_its_environment(containerfile):
    last = max(i for i, (word, _) in enumerate(containerfile) if word == "FROM")
    final = containerfile[last:]
    entrypoint = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert len(entrypoint) == 1 and json.loads(entrypoint[0]) == ["python", "-m", "autograder"]
    env = " ".join(rest for word, rest in containerfile if word == "ENV")
    assert "AUTOGRADER_VENV=/opt/cs231n-style-venv" in env and "PATH=/opt/cs231n-style-venv/bin:$PATH" in env
    assert "CS231N_REFERENCE=/autograder/source/reference_solutions.py" in env
    assert ("COPY", "--from=reference /tmp/reference_solutions.py /autograder/source/reference_solutions.py") in final
    assert ("WORKDIR", "/autograder/source") in final  # python -m autograder finds the grader there
    assert not any(source.startswith("solutions") for stage, sources, _ in copies(final) if stage is None
                   for source in sources), "the solution notebooks stay out of the final image"
    assert ("COPY", "solutions /tmp/solutions") in containerfile  # read by the reference stage only


# --- the Job --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def documents() -> list[dict]:
    return list(yaml.safe_load_all((DEPLOY / "grade-job.yaml").read_text()))


def job(documents, step: str) -> dict:
    found = [d for d in documents if d["kind"] == "Job" and d["metadata"]["labels"]["step"] == step]
    assert len(found) == 1, f"one Job labelled step={step}"
    return found[0]


def test_grading_is_an_indexed_job_of_768mi_and_half_a_cpu(documents):
    grading = job(documents, "grade")
    assert grading["apiVersion"] == "batch/v1"
    spec = grading["spec"]
    assert spec["completionMode"] == "Indexed"
    assert isinstance(spec["completions"], int) and isinstance(spec["parallelism"], int)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    resources = container["resources"]
    assert resources["limits"] == resources["requests"] == {"memory": "768Mi", "cpu": "500m"}
    for rule in spec["podFailurePolicy"]["rules"]:
        assert rule["onExitCodes"]["containerName"] == container["name"]
    assert "backoffLimitPerIndex" in spec  # FailIndex needs it
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert {v["name"] for v in pod["volumes"]} == set(mounts)
    for variable in container["env"]:
        assert any(variable["value"].startswith(path + "/") for path in mounts.values()), variable
    for document in documents:  # apply -l step=... must pick each object up
        assert document["metadata"]["labels"]["step"] in ("grade", "gradebook")


def test_the_gradebook_job_runs_the_gradebook_command_on_the_pods_results(documents):
    grading, book = job(documents, "grade"), job(documents, "gradebook")
    [grader] = grading["spec"]["template"]["spec"]["containers"]
    [container] = book["spec"]["template"]["spec"]["containers"]
    assert container["image"] == grader["image"] and "command" not in container  # the image's python -m autograder
    results = {v["name"]: v["value"] for v in grader["env"]}["RESULTS"]
    assert container["args"][:2] == ["gradebook", results] and container["args"][2] == "--csv"
    assert container["volumeMounts"] == grader["volumeMounts"]
    assert book["spec"]["template"]["spec"]["volumes"] == grading["spec"]["template"]["spec"]["volumes"]


def run_pod(documents, tmp_path: Path, index: int, manifest: list[str], files: dict[str, str]):
    """The grading pod's command for ``index``, run here: its volume is ``tmp_path/volume`` (the
    ``manifest`` lines, and ``files`` in its submissions folder), and ``python`` records its arguments
    before running this environment's Python from the repository root (the image's WORKDIR holds the
    grader the same way). Returns the finished process, the volume, and python's arguments (None
    where it did not start)."""
    [container] = job(documents, "grade")["spec"]["template"]["spec"]["containers"]
    [mount] = container["volumeMounts"]
    volume = tmp_path / "volume"
    env = {v["name"]: str(volume) + v["value"].removeprefix(mount["mountPath"]) for v in container["env"]}
    Path(env["SUBMISSIONS"]).mkdir(parents=True)
    Path(env["MANIFEST"]).write_text("".join(line + "\n" for line in manifest))
    for name, text in files.items():
        (Path(env["SUBMISSIONS"]) / name).write_text(text)
    bin_, argv = tmp_path / "bin", tmp_path / "argv"
    bin_.mkdir()
    (bin_ / "python").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(argv))}\n'
                                 f'exec {shlex.quote(sys.executable)} "$@"\n')
    (bin_ / "python").chmod(0o755)
    assert container["command"] == ["sh", "-c"] and len(container["args"]) == 1
    done = subprocess.run(["sh", "-c", container["args"][0]], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env, "JOB_COMPLETION_INDEX": str(index),
                               "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"})
    return done, volume, argv.read_text().splitlines() if argv.exists() else None


def test_a_pod_grades_its_manifest_line_with_the_grade_command_into_a_valid_results_json(documents, tmp_path):
    done, volume, argv = run_pod(documents, tmp_path, 1, ["alice", "bob.zip", "carol.ipynb"],
                                 {"bob.zip": "not a zip"})
    assert argv == [*GRADE, f"{volume}/submissions/bob.zip", "--out", f"{volume}/results/bob"], done.stderr
    assert done.returncode == 0, done.stderr
    results = json.loads((volume / "results" / "bob" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 0 and "not a readable .zip" in results["extra_data"]["error"]
    assert main(["gradebook", str(volume / "results"), "--csv", str(tmp_path / "gradebook.csv")]) == 0
    [row] = csv.DictReader((tmp_path / "gradebook.csv").open())
    # the default rubric's maximum: 100 + 30 (notebook 05's section) + 15 (notebook 06's)
    assert row["submission"] == "bob.zip" and row["total"] == "0" and row["max_score"] == "145"
    assert row["note"].startswith("not graded: ") and "not a readable .zip" in row["note"]


def test_a_pod_past_the_manifest_fails_with_the_input_error_status(documents, tmp_path):
    done, _, argv = run_pod(documents, tmp_path, 2, ["alice", "bob.zip"], {})
    assert done.returncode == 2 and argv is None  # not retried (podFailurePolicy), nothing graded
    assert "line 3 of" in done.stderr and "manifest" in done.stderr


# --- the gradebook --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rubric():
    return load_rubric(DEFAULT_RUBRIC)


def graded(rubric, name: str, fraction: float, error: str = "") -> GradingResult:
    """A result as the grader makes it: every test scored ``fraction`` of its points (2/3: 2 decimals
    in the gradebook, full precision in results.json)."""
    tests = [TestResult(spec, spec.points * fraction, "PASS" if fraction == 1 else "FAIL - wrong values", 3, 3)
             for spec in rubric.tests]
    return GradingResult(name, tests, 4.25, rubric.seed, ["run as a separate process"], error=error,
                         where={} if error else {"content_loss": "01_content_loss.ipynb"})


def test_the_gradebook_of_results_json_files_is_the_gradebook_batch_writes(rubric, tmp_path, capsys):
    results = [graded(rubric, "alice", 1), graded(rubric, "bob.zip", 2 / 3),
               graded(rubric, "carol.ipynb", 0, error="no .ipynb notebook found in 'carol.ipynb'")]
    for result in results:  # as batch and each pod write them: FOLDER/STEM/results.json
        path = write_results(result, rubric, tmp_path / "grading" / Path(result.submission).stem)
        jsonschema.validate(json.loads(path.read_text()), SCHEMA)
    write_gradebook(results, rubric, tmp_path / "batch.csv")
    assert main(["gradebook", str(tmp_path / "grading"), "--csv", str(tmp_path / "collected.csv")]) == 0
    assert (tmp_path / "collected.csv").read_text() == (tmp_path / "batch.csv").read_text()
    assert "collected 3 submissions (1 not graded)" in capsys.readouterr().out


def test_the_gradebook_has_a_row_for_each_folder_it_cannot_use(rubric, tmp_path, capsys):
    folder = tmp_path / "results"
    write_results(graded(rubric, "alice", 1), rubric, folder / "alice")
    (folder / "dave").mkdir()  # its pod was killed before writing
    (folder / "erin").mkdir()
    (folder / "erin" / "results.json").write_text("{not json")
    other = json.loads((folder / "alice" / "results.json").read_text())
    other["extra_data"]["test_ids"][0] = "renamed.public"
    (folder / "frank").mkdir()
    (folder / "frank" / "results.json").write_text(json.dumps(other))
    (folder / ".hidden").mkdir()
    assert main(["gradebook", str(folder), "--csv", str(tmp_path / "book.csv")]) == 0
    rows = {row["submission"]: row for row in csv.DictReader((tmp_path / "book.csv").open())}
    assert list(rows) == ["alice", "dave", "erin", "frank"]
    assert rows["alice"]["total"] == "145" and rows["alice"]["note"] == ""
    assert "no results.json" in rows["dave"]["note"]
    assert "not a results.json of this autograder" in rows["erin"]["note"]
    assert "another rubric" in rows["frank"]["note"] and "renamed.public" in rows["frank"]["note"]
    assert all(rows[name]["total"] == "0" and rows[name]["note"].startswith("not graded: ")
               for name in ("dave", "erin", "frank"))
    err = capsys.readouterr().err
    assert all(f"{name}: " in err for name in ("dave", "erin", "frank"))


def test_the_gradebook_refuses_a_missing_folder_and_an_empty_one(tmp_path, capsys):
    assert main(["gradebook", str(tmp_path / "nowhere"), "--csv", str(tmp_path / "book.csv")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["gradebook", str(tmp_path / "empty"), "--csv", str(tmp_path / "book.csv")]) == 1
    assert "no report folders" in capsys.readouterr().err and not (tmp_path / "book.csv").exists()
