"""Reading a trial's record from what Ray left: its epochs after a crash and a resume."""

import pandas as pd

from tuner import outcome


def test_a_trial_resumed_after_rows_were_lost_counts_the_epoch_it_reached_and_is_complete():
    # epochs 1-2 never reached the bucket; the trial resumed from its epoch-3 checkpoint, then a
    # crash redid epoch 5
    progress = pd.DataFrame({"training_iteration": [3, 4, 5, 5, 6], "epoch": [3, 4, 5, 5, 6],
                             "val_acc": [0.5, 0.6, 0.1, 0.7, 0.8]})
    frame = outcome._epochs(progress)
    assert frame.epoch.tolist() == [3, 4, 5, 6] and frame.val_acc.tolist() == [0.5, 0.6, 0.7, 0.8]
    assert outcome._epochs_reached(frame) == 6
    assert outcome._status("TERMINATED", "", outcome._epochs_reached(frame), 6) == "completed"
    assert outcome._status("TERMINATED", "", outcome._epochs_reached(frame.iloc[:3]), 6) == "early_stopped"
