"""Entry point (and Hugging Face Space app file): `python app.py --help`."""
import importlib.util
import sys

if __name__ == "__main__":
    if importlib.util.find_spec("spaces"):  # ZeroGPU: `spaces` must patch torch before CUDA is touched
        import spaces  # noqa: F401
    from app.cli import main

    sys.exit(main())
