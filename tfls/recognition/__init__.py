"""Scene text recognition: charset, data, four-stage recognizer, LS-ED surrogate, metrics, serving."""
