"""`python -m wae_bench ...` (also what `torchrun -m wae_bench` runs)."""
from wae_bench.cli import main

if __name__ == "__main__":
    main()
