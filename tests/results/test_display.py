"""Labkit's objects in a notebook: the HTML that IPython's display protocol shows for a prediction, a
run and a lab, made from real runs, and the text a protocol wrote escaped, never interpreted."""
from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from IPython.core.formatters import format_display_data
from labs import lab_with_workers
from notebooks import protocol_notebook
from shared_data import webdata

import labkit

HH = webdata() / "models" / "hodgkin_huxley_squid_axon_model_1952_modified.cellml"
HOSTILE_BODY = """
from labkit.results import OutputWriter
out = OutputWriter(output_dir)
out.save("time", [0.0, 1.0], units="ms")
out.save("doubled", [0.0, 2.0], units="mV")
out.save("peak", 2.0, units="mV", description="<script>alert(1)</script> & more")
"""


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[labkit.Lab, dict[str, labkit.experiments.RunInfo]]]:
    with lab_with_workers(tmp_path_factory.mktemp("display") / "lab", workers=1) as lab:
        lab.add_model(HH, name="hh")
        lab.add_protocol({"test.ipynb": protocol_notebook()}, name="test")
        lab.add_protocol({"hostile.ipynb": protocol_notebook(body=HOSTILE_BODY)}, name="hostile")
        runs = {"ok": lab.run("hh", "test"), "late": lab.run("hh", "test", {"fail_late": True}),
                "hostile": lab.run("hh", "hostile")}
        yield lab, {name: info for name, info in zip(runs, lab.wait(list(runs.values()), timeout=300))}


def html(obj: object) -> str:
    """What IPython itself would show for ``obj`` in a notebook (the display protocol, not our method)."""
    data, _ = format_display_data(obj)
    return data["text/html"]


def test_a_prediction_shows_its_outputs_with_units_and_its_plot(shown) -> None:
    lab, runs = shown
    prediction = lab.prediction(runs["ok"].id)
    page = html(prediction)
    assert "success" in page and runs["ok"].id in page
    for row in ("<td><code>peak</code></td><td>mV</td><td>8</td>", "<td><code>time</code></td><td>ms</td>"
                "<td>5 values, 0 … 4</td>"):
        assert row in page
    [plot] = prediction.plots
    assert f'src="data:image/png;base64,{base64.b64encode(plot.read_bytes()).decode()}"' in page


def test_what_a_protocol_wrote_is_escaped(shown) -> None:
    lab, runs = shown
    page = html(lab.prediction(runs["hostile"].id))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "<script>" not in page


def test_a_partial_run_shows_its_error_and_its_kept_outputs(shown) -> None:
    lab, runs = shown
    run_page = html(runs["late"])
    assert "partial" in run_page and "protocol <b>test</b> v1 on model <b>hh</b> v1" in run_page
    assert "RuntimeError: the protocol failed on purpose after saving two outputs" in run_page
    page = html(lab.prediction(runs["late"].id))
    assert "<code>doubled</code>" in page and "<code>peak</code>" not in page


def test_a_lab_shows_what_it_holds(shown) -> None:
    lab, _ = shown
    page = html(lab)
    assert "1 models, 2 protocols, 0 datasets" in page
    assert "2 success, 1 partial" in page and str(lab.settings.root) in page
