"""`deepseek-operator crds`: write (or check) crds/ and docs/reference/api.md from the models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def generated_files(crd_dir: Path, reference: Path) -> dict[Path, str]:
    """Every generated path with the text it must hold."""
    from deepseek_operator.api.crd import rendered_crds
    from deepseek_operator.api.reference_page import render_reference

    files = {crd_dir / name: text for name, text in rendered_crds().items()}
    files[reference] = render_reference()
    return files


def stale_files(files: dict[Path, str]) -> list[Path]:
    """Paths whose content differs from what the models generate (missing ones included)."""
    return [
        path
        for path, text in files.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def crds(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Directory for the CRD YAML files.")
    ] = Path("crds"),
    reference: Annotated[
        Path, typer.Option("--reference", help="Markdown API reference to write.")
    ] = Path("docs/reference/api.md"),
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any file differs from the models."),
    ] = False,
) -> None:
    """Generate the CustomResourceDefinitions and the API reference from the pydantic models."""
    files = generated_files(output_dir, reference)
    stale = stale_files(files)
    if check:
        for path in stale:
            console.print(f"[red]out of date:[/] {path}", highlight=False)
        if stale:
            console.print("run `deepseek-operator crds` to regenerate")
            raise typer.Exit(code=1)
        console.print(f"{len(files)} generated files are up to date")
        return
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
        console.print(f"wrote {path}", highlight=False)
    console.print(f"{len(stale)} of {len(files)} files changed")


def register(app: typer.Typer) -> None:
    app.command("crds")(crds)
