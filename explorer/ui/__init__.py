"""The Panel app (`panel serve explorer`): views, one module per tab, and the plot helpers they share.

Modules: ``context`` (settings, the model loaded once per process, the worker pool), ``compute``
(the work behind each tab, no panel), ``reference`` (reference maps), ``jobs`` (the one job
lifecycle of every tab: start on a worker, busy, supersede/cancel, log errors, show), ``plots`` / ``posterior`` (HoloViews figures), ``panes`` (figures updated in
place), ``emulate`` / ``response`` / ``infer`` / ``game`` (the tabs; ``game_rules``: the guessing
game's rules, no panel), ``explain`` (the intro and the glossary), ``app`` (the page).

Torch's OpenMP threads wait passively here: on a shared 2-core machine a busy-waiting team made a
4-map sample 6x slower (measured 14 s vs 2.3 s with a training job running). This only takes
effect when the app is imported before torch, as ``panel serve explorer`` does.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
