"""Reading a run back: the text summary, the plots and the HTML page of `azr report`."""
