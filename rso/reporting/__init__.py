"""Restricted reporting for National Contact Points: aggregated statistics computed in SQL
over non-identifying columns, statistical disclosure control, a prepare/approve/publish
workflow, entitlements per State, and watermarked, logged copies (page, PDF, CSV)."""
