"""Excel and CSV: templates generated from the schema, imports (dry run, batches, revert) and exports.

The data flow: a file is read into sheets of raw cells (`read`), its columns matched to fields
(`columns`), every cell turned into a value by the same rules as forms and the API (`cells`), the
rows planned and written in one transaction (`importer`); `export` writes what the gate lets a
user see, `template` what they may fill in.
"""
