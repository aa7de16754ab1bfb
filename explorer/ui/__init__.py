"""The Panel app (`panel serve explorer`): views, one module per tab, and the plot helpers they share.

Modules: ``context`` (settings, the model loaded once per process, the worker pool), ``compute``
(the work behind each tab, no panel), ``reference`` (reference maps), ``jobs`` (the one job
lifecycle of every tab: start on a worker, busy, supersede/cancel, log errors, show), ``plots`` / ``posterior`` (HoloViews figures), ``panes`` (figures updated in
place), ``emulate`` / ``response`` / ``infer`` / ``game`` (the tabs; ``game_rules``: the guessing
game's rules, no panel), ``explain`` (the intro and the glossary), ``app`` (the page).

Torch's OpenMP threads spin briefly, then sleep, between the network's many small parallel
regions: ``GOMP_SPINCOUNT=3000`` (about 30 µs; GNU OpenMP, torch's runtime on Linux), unless
``GOMP_SPINCOUNT`` is set already (``GOMP_SPINCOUNT=0`` waits fully passively). Measured on 2 cores,
4 maps with the shipped sampler on a worker thread: fully passive waits 1.55-1.7 s, 3000 spins
0.9-1.2 s, libgomp's default (300,000) 0.75-0.9 s; beside a 2-thread torch job in another process
(a training run) passive 1.4-2.8 s, 3000 spins 2.2-2.5 s, 30,000 spins 2.4-11 s, the default 4.4-5 s
(it was 14 s vs 2.3 s passive for an earlier network). ``OMP_WAIT_POLICY=PASSIVE`` stays the default
for other OpenMP runtimes. This only takes effect when the app is imported before torch, as
``panel serve explorer`` does.
"""

import os

os.environ.setdefault("GOMP_SPINCOUNT", "3000")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
