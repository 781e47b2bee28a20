"""One builder module per model. Each builds a Pyomo ConcreteModel exposing the same
handles so that one solve routine serves them all:

* ``m.uncovered``: expression of the stage-1 objective (minimised),
* ``m.cost``: expression of the annual cost in EUR (stage 2 minimises it at the stage-1 optimum),
* ``m.obj_uncovered`` / ``m.obj_cost``: the two objectives, the second deactivated,
* ``m.cost_scale``: EUR per model cost unit (the budget row is scaled for conditioning),
* ``decisions(m)``: a function of the module returning plain pandas data, no Pyomo.
"""
