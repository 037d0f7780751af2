"""Board reports (issue 22): `figures` computes a period's statistics from the facts
models.reporting reads; `report` puts them together with the themes and the previous
period; the CLI writes them out."""
