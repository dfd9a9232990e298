"""``python -m boxsup.proposals --dataset toy --split train --method mcg-ours``."""
import argparse
import sys

from .cli import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m boxsup.proposals",
                                     description="pre-compute candidate segments for a dataset split")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
