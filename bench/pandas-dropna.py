# The script sluice replaces: read_csv, dropna, to_csv.   python3 bench/pandas-dropna.py IN.csv OUT.csv
import sys
import pandas as pd

pd.read_csv(sys.argv[1]).dropna().to_csv(sys.argv[2], index=False)
