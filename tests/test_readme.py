"""README.md's demo summary is in exactly the format `tsslbp demo` prints (it is pasted in from a real
run by `make readme-figures`), and its usage lines name shipped configs."""

import re

from paths import REPO

from tsslbp.configs import shipped_configs
from tsslbp.workflows.summary import DEMO_HEADER, DEMO_ROW_LABELS, demo_rows, table_lines

README = REPO / "README.md"
BEGIN = "<!-- begin demo summary: written by `make readme-figures` from a fresh run -->"
END = "<!-- end demo summary -->"


def _demo_region() -> list[str]:
    text = README.read_text()
    assert BEGIN in text and END in text, "the markers make readme-figures replaces between"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip().splitlines()


def test_readme_demo_table_has_the_format_demo_prints():
    region = _demo_region()
    assert re.fullmatch(r"`make demo` \(\d+ s after the install.*", region[0]), region[0]
    fence = [i for i, line in enumerate(region) if line == "```"]
    assert len(fence) == 2
    table = region[fence[0] + 1 : fence[1]]
    rows = [re.split(r"\s{2,}", line.strip()) for line in table[1:]]
    assert [r[0] for r in rows] == list(DEMO_ROW_LABELS)
    # Re-rendered with the demo's own table code, the README's table must come out unchanged.
    assert table_lines(rows, DEMO_HEADER) == table, "alignment or columns differ from `tsslbp demo`"

    # The same numbers put through demo_rows give the README's cells: decimals and units as printed.
    def pct(cell: str) -> float:
        return float(cell.rstrip("%")) / 100

    def sec(cell: str) -> float:
        return float(cell.removesuffix(" s"))

    (flt, gold, subset, lava) = rows
    assert flt[2] == gold[2] and subset[2] == lava[2]
    remade = demo_rows(
        pct(flt[1]),
        sec(flt[3]),
        pct(gold[1]),
        sec(gold[3]),
        int(flt[2]),
        {"golden": pct(subset[1]), "lava": pct(lava[1])},
        {"golden": sec(subset[3]), "lava": sec(lava[3])},
        int(lava[2]),
        pct(lava[4]),
    )
    assert remade == rows


def test_readme_models_table_is_the_manifests():
    """The "Trained models" table is exactly what models/*.net.manifest.json give."""
    from tsslbp.workflows.shipping import models_table

    begin = (
        "<!-- begin models table: written by `make readme-figures` from models/*.manifest.json -->"
    )
    text = README.read_text()
    assert begin in text and "<!-- end models table -->" in text
    region = text.split(begin, 1)[1].split("<!-- end models table -->", 1)[0].strip().splitlines()
    assert region == models_table(REPO / "models"), "run `make readme-figures` (or --models-only)"


def test_readme_names_only_shipped_configs():
    text = README.read_text()
    found = re.findall(r"tsslbp (?:train|demo --config) (configs/)?([a-z0-9_]+)(\.yaml)?", text)
    # A name, or configs/NAME.yaml; a bare FILE.yaml is the user's own file.
    named = {name for prefix, name, suffix in found if prefix or not suffix}
    assert named, "the README shows how to train a shipped config"
    assert named <= set(shipped_configs()), named - set(shipped_configs())
