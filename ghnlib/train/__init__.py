r"""Training: graph hypernetworks (GHN, Noise GHN) and plain networks."""
