"""Chart builders shared by the pages and the reports: Plotly only, no Dash, no data access."""
