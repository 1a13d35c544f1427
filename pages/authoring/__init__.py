"""The Author page's tabs, one view function (`show(db, dataset)`) per tab; pages/author.py lays them out."""
