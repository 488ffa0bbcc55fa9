"""Call quality: campaign scripts, evaluation grids and scores, agent scorecards and complaints."""
