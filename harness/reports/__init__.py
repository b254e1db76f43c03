"""Reports of a run: ladder diagrams, the HTML summary, the results bundle, Allure glue."""
