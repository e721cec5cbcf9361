"""Binder's and the local conda environment files: valid YAML, conda-forge, every dependency of
pyproject.toml present (under its conda-forge name or in the pip section), CPU-only pytorch on
Binder, and a postBuild that installs mgvsr and renders the sample clips."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML: a dependency of papermill (the notebooks extra)
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parent.parent
ENV_FILES = {"binder": REPO / "binder" / "environment.yml", "local": REPO / "environment.yml"}
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}  # PyPI name -> conda-forge name
PIP_ONLY = {"opencv-python-headless"}  # installed from PyPI inside the environment (pyproject's OpenCV build)
SPEC = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*)(\s*(?P<version>[=<>!~][^\s]*))?(\s+(?P<build>\S+))?$")


def load(which: str) -> dict:
    return yaml.safe_load(ENV_FILES[which].read_text(encoding="utf-8"))


def conda_specs(env: dict) -> dict[str, str]:
    """``{name: spec}`` of the conda dependencies; every entry must parse as a match spec."""
    specs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            continue
        match = SPEC.match(dep)
        assert match, f"not a conda match spec: {dep!r}"
        specs[match["name"]] = dep
    return specs


def pip_specs(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(sections) <= 1
    return sections[0] if sections else []


def requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement)[0].lower()


def pyproject_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [requirement_name(r) for r in project["dependencies"] + project["optional-dependencies"]["notebooks"]]


@pytest.mark.parametrize("which", sorted(ENV_FILES))
def test_env_file_is_conda_forge_yaml(which: str):
    env = load(which)
    assert set(env) == {"name", "channels", "dependencies"}
    assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"]
    specs = conda_specs(env)
    assert specs["python"] == "python =3.11"
    assert "pip" in specs


@pytest.mark.parametrize("which", sorted(ENV_FILES))
def test_env_file_has_every_dependency(which: str):
    env = load(which)
    conda = conda_specs(env)
    pip = {requirement_name(r) for r in pip_specs(env) if not r.startswith("-")}
    for name in pyproject_requirements():
        if name in PIP_ONLY:
            assert name in pip, f"{ENV_FILES[which]}: {name} belongs in the pip section"
        else:
            assert CONDA_NAMES.get(name, name) in conda, f"{ENV_FILES[which]}: {name} is missing"
    for spec in conda.values():  # loosely pinned: floors or a minor version, never an exact build
        assert "==" not in spec, spec


def test_binder_is_cpu_only_and_leaves_mgvsr_to_postbuild():
    env = load("binder")
    assert conda_specs(env)["pytorch"].split()[-1] == "cpu*"  # conda-forge's CPU build string
    assert not any("-e" in r for r in pip_specs(env))  # repo2docker installs the env before copying the repo
    local = load("local")
    assert "cpu" not in conda_specs(local)["pytorch"]  # locally: CUDA where there is a GPU
    assert "-e ." in pip_specs(local)


def test_postbuild_installs_mgvsr_and_prepares_the_sample_clips():
    post = REPO / "binder" / "postBuild"
    text = post.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    assert os.access(post, os.X_OK), "postBuild must be executable"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "pip install --no-deps -e ." in lines
    assert 'python -c "from mgvsr.data.sample import sample_root; sample_root()"' in lines
    subprocess.run(["bash", "-n", str(post)], check=True)  # shell syntax
