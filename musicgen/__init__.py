"""musicgen: train LSTM networks on MIDI files and generate new music from them."""
