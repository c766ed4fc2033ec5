"""The isolation layers, one module each, all of one shape (layer.py: a name, `prepare`
in the slot ahead of demand, `apply` in the job); order.py owns their order as two lists
(SLOT, JOB), and the layer names Status reports come from those lists.

Runs in sandbox processes (and the zygote): imports only the top-level modules (linux,
model, errors) and limits/; never frontdoor/, pool/, ops/ or sandbox/.
"""
