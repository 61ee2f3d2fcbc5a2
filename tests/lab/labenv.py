"""Read the lab's env file (DIR/lab.env: `export MAILCAT_LAB_X='value'` lines)."""
import os
import shlex


def load(path):
    """Return {NAME: value} without the MAILCAT_LAB_ prefix, e.g. env["IMAPS_PORT"]."""
    if os.path.isdir(path):
        path = os.path.join(path, "lab.env")
    env = {}
    with open(path) as f:
        for line in f:
            toks = shlex.split(line, comments=True)
            if toks and toks[0] == "export":
                toks = toks[1:]
            for tok in toks:
                k, _, v = tok.partition("=")
                if k.startswith("MAILCAT_LAB_"):
                    env[k[len("MAILCAT_LAB_"):]] = v
    return env
