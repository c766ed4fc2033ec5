"""Adapters that plug leeward into agent frameworks (MCP, smolagents, AutoGen,
LangChain) and an E2B-shaped facade. Each framework is an optional extra
(`pip install leeward[mcp]`, ...): nothing here is imported by `leeward` itself."""
