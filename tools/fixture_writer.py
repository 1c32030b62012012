"""Write PyTorch reference values as a Lua file that returns one table.

Shared by the tools/make_fixtures_*.py scripts that store their fixture as
a nested Lua constructor. The scripts import it from their own directory,
which Python puts first on sys.path when it runs a script.
"""

import torch


def lua(value, indent=""):
    """Format a tensor, list, dict, number or string as a Lua constructor."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "0/0"
        if value in (float("inf"), float("-inf")):
            return "math.huge" if value > 0 else "-math.huge"
        return "%.9g" % value
    if isinstance(value, str):
        return '"%s"' % value
    if isinstance(value, list):
        return "{ " + ", ".join(lua(v, indent) for v in value) + " }"
    if isinstance(value, dict):
        inner = indent + "  "
        fields = ",\n".join("%s%s = %s" % (inner, k, lua(v, inner))
                            for k, v in value.items())
        return "{\n" + fields + ",\n" + indent + "}"
    raise TypeError(type(value))


def write_fixture(path, header, fixture):
    """Write the Lua comment lines `header`, then "return <fixture>"."""
    with open(path, "w") as f:
        f.write(header)
        f.write("return " + lua(fixture) + "\n")
