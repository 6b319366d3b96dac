"""Home: what the lab holds, what happened lately, and the way to every other page."""
from __future__ import annotations

import ipywidgets as w

from ..lab import Lab
from . import queries
from .common import esc, header, html_table, link, page_box, page_url, when

CARDS = (("models", "models", "browse", {"kind": "model"}),
         ("protocols", "protocols", "browse", {"kind": "protocol"}),
         ("datasets", "datasets", "browse", {"kind": "dataset"}),
         ("predictions", "predictions", "compare", {}),
         ("queued", "runs queued", "matrix", {}),
         ("running", "runs running", "matrix", {}))


class HomePage:
    """Counts, recent activity and links; ``refresh`` re-reads the lab (a button does it)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.cards = w.HTML()
        self.activity = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="110px"))
        self.refresh_button.on_click(lambda _: self.refresh())
        intro = w.HTML(
            '<div style="max-width: 900px">Versioned cardiac cell models (CellML), protocols (notebooks) and '
            "data sets; every protocol runs on every model as an experiment on the lab's workers. "
            f'Browse and upload on {link("browse", "models, protocols & datasets")}, launch and watch runs on the '
            f'{link("matrix", "experiment matrix")}, overlay predictions on {link("compare", "compare")}.</div>'
            f'<div class="lk-muted">lab folder <code>{esc(lab.settings.root)}</code></div>')
        self.counts: dict[str, int] = {}
        self.widget = page_box([header("home", lab, "labkit Web Lab"), intro, self.cards,
                                w.HBox([w.HTML('<div class="lk-h2">Recent activity</div>'), self.refresh_button],
                                       layout=w.Layout(align_items="baseline")),
                                self.activity])
        self.refresh()

    def refresh(self) -> None:
        self.counts = queries.counts(self.lab)
        cards = []
        for key, label, page, params in CARDS:
            cards.append(f'<a href="{esc(page_url(page, **params))}" target="_self" class="lk-card-link">'
                         f'<div class="lk-card" data-count="{key}">'
                         f'<div class="lk-count">{self.counts.get(key, 0)}</div>'
                         f'<div class="lk-label">{esc(label)}</div></div></a>')
        self.cards.value = f'<div class="lk-cards">{"".join(cards)}</div>'
        items = queries.recent_activity(self.lab)
        if not items:
            self.activity.value = ('<div class="lk-muted">Nothing yet: add a model and a protocol on the '
                                   f'{link("browse", "entity page")}.</div>')
            return
        rows = [(esc(when(a.at)), "saved" if a.kind == "version" else "run",
                 f'<a href="{esc(page_url(a.page, **a.params))}" target="_self">{esc(a.text)}</a>') for a in items]
        self.activity.value = html_table(["when", "what", ""], rows, raw=True)
