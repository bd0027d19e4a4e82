"""The spreadsheet core: readers, cell rules, column specs and the one import that every caller uses."""
