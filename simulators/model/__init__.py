"""The SimPy model of a returns season: demand, customers, carrier transit, warehouse capacity."""
