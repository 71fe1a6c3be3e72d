"""Tests that run only in the Google Colab environment that ``scripts/colab_env.sh`` builds."""
