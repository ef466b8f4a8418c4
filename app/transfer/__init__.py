"""Excel and CSV: templates generated from the schema, imports (dry run, batches, revert) and exports.

The data flow: a file is read into sheets of raw cells (`read`), its heading row found and its
columns matched to fields (`headings`, `columns`), every cell turned into a value by the same rules
as forms and the API (`cells`), the rows planned (`importer`) and written in one transaction
(`writing`), the batch kept for a revert (`batches`); `export` writes what the gate lets a user see,
`template` what they may fill in, `errorbook` the file back with its problems marked.
"""
