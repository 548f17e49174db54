namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>The tool's exit codes.</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Success = 0;

    /// <summary>The command failed: a missing or invalid file, an invalid value, a failed download.</summary>
    public const int Failure = 1;

    /// <summary>The command line could not be parsed (unknown command or option, malformed value).</summary>
    public const int Usage = 2;

    /// <summary>Interrupted by Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;
}
