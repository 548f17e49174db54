namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>A user mistake the tool itself detects (an option combination, an empty range): printed as one line.</summary>
internal sealed class CliException(string message) : Exception(message);
