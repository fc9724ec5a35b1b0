"""Channel QR codes (渠道活码): one code per placement, with its tags, welcome and routing."""
