"""`python -m iggt.train ...` = `iggt train ...`; the form torchrun launches:

torchrun --nproc_per_node=4 -m iggt.train --config configs/small_synthetic.yaml
"""

import sys

from iggt.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
