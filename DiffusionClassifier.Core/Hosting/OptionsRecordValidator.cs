using Microsoft.Extensions.Options;

namespace DiffusionClassifier.Hosting;

/// <summary>
/// Validates a bound options record with its own <c>Validate()</c>, so that a bad appsettings.json fails with the
/// message the constructors give for the same value.
/// </summary>
/// <typeparam name="TOptions">The options record.</typeparam>
internal sealed class OptionsRecordValidator<TOptions> : IValidateOptions<TOptions>
    where TOptions : class
{
    private readonly Action<TOptions> validate;

    /// <summary>Creates the validator.</summary>
    /// <param name="validate">The record's Validate method; throws ArgumentException on a bad value.</param>
    public OptionsRecordValidator(Action<TOptions> validate) => this.validate = validate;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        try
        {
            validate(options);
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail(e.Message);
        }
    }
}
