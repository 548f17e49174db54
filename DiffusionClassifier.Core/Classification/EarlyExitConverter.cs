namespace DiffusionClassifier.Classification;

/// <summary>
/// Reads an <see cref="EarlyExit"/> from text (<see cref="EarlyExit.Parse"/>; <see cref="EarlyExit.None"/> is null), so
/// that configuration binding can turn the default exit off (<c>"EarlyExit": "none"</c>) or set it in one value.
/// </summary>
internal sealed class EarlyExitConverter : NoneOrTextConverter<EarlyExit>
{
    /// <inheritdoc />
    protected override string NoneText => EarlyExit.None;

    /// <inheritdoc />
    protected override EarlyExit Parse(string text) => EarlyExit.Parse(text);

    /// <inheritdoc />
    protected override string Format(EarlyExit value) => value.ToSpec();
}
