"""`deepseek-operator crds`: write (or check) crds/, the chart's copy of them and
docs/reference/api.md from the models. The chart carries its own copy because helm installs
only CRDs that lie inside the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from deepseek_operator.cli.inputs import InputError, writable_file
from deepseek_operator.textfiles import FileProblem, read_utf8

console = Console(stderr=True)


def generated_files(
    crd_dir: Path, reference: Path, chart_crd_dir: Path | None = None
) -> dict[Path, str]:
    """Every generated path with the text it must hold."""
    from deepseek_operator.api.crd import rendered_crds
    from deepseek_operator.api.reference_page import render_reference

    files = {crd_dir / name: text for name, text in rendered_crds().items()}
    if chart_crd_dir is not None:
        files.update({chart_crd_dir / name: text for name, text in rendered_crds().items()})
    files[reference] = render_reference()
    return files


def stale_files(files: dict[Path, str], options: dict[Path, str]) -> list[Path]:
    """Paths whose content differs from what the models generate (missing ones included); a
    path that exists but is no text file is an `InputError` naming its option."""
    stale = []
    for path, text in files.items():
        try:
            current = read_utf8(path) if path.exists() else None
        except FileProblem as error:
            raise InputError(f"{options[path]}: {error}") from None
        if current != text:
            stale.append(path)
    return stale


def crds(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Directory for the CRD YAML files.")
    ] = Path("crds"),
    chart_crds: Annotated[
        Path,
        typer.Option("--chart-crds", help="The Helm chart's CRD directory, kept identical."),
    ] = Path("charts/deepseek-operator/crds"),
    reference: Annotated[
        Path, typer.Option("--reference", help="Markdown API reference to write.")
    ] = Path("docs/reference/api.md"),
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any file differs from the models."),
    ] = False,
) -> None:
    """Generate the CustomResourceDefinitions and the API reference from the pydantic models."""
    files = generated_files(output_dir, reference, chart_crds)
    for option, directory in (("--output-dir", output_dir), ("--chart-crds", chart_crds)):
        if directory.exists() and not directory.is_dir():
            raise InputError(f"{option}: {directory} is not a directory")
    options = {
        path: "--reference"
        if path == reference
        else "--chart-crds"
        if path.parent == chart_crds
        else "--output-dir"
        for path in files
    }
    stale = stale_files(files, options)
    if check:
        for path in stale:
            console.print(f"[red]out of date:[/] {path}", highlight=False)
        if stale:
            console.print("run `deepseek-operator crds` to regenerate")
            raise typer.Exit(code=1)
        console.print(f"{len(files)} generated files are up to date")
        return
    # Every destination is checked before the first file is written: a bad --reference must
    # not leave new CRDs beside an old reference.
    for path in stale:
        option = options[path]
        if not path.parent.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise InputError(
                    f"{option}: cannot create {path.parent}: {error.strerror or error}"
                ) from None
        writable_file(path, option)
    for path in stale:
        try:
            path.write_text(files[path], encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror or error}") from None
        console.print(f"wrote {path}", highlight=False)
    console.print(f"{len(stale)} of {len(files)} files changed")


def register(app: typer.Typer) -> None:
    app.command("crds")(crds)
