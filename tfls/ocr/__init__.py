"""Reading whole photos: detector + in-graph word rectification + recognizer in one SavedModel, the
`tfls read` command's pieces, and the ICDAR 2015 end-to-end evaluation."""
