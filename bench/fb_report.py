def num(v, spec="%.1f"): return "-" if v is None else spec % v
