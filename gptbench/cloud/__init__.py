"""GPU specs, prices, and estimates of time and money. Never imports torch: these answer in well under a second."""
