"""Export to and import from the Hugging Face (Llama) format."""
