using System.ComponentModel;
using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// Reads an optional setting from text so that configuration binding (appsettings.json) can set it in one value:
/// <see cref="NoneText"/> is null, anything else goes to <see cref="Parse"/>. Writes it back the same way.
/// </summary>
/// <typeparam name="T">The setting's type.</typeparam>
internal abstract class NoneOrTextConverter<T> : TypeConverter where T : class
{
    /// <summary>The text that means "off" (a null setting).</summary>
    protected abstract string NoneText { get; }

    /// <summary>Reads the setting; throws on bad text.</summary>
    /// <param name="text">Trimmed text other than <see cref="NoneText"/>.</param>
    protected abstract T Parse(string text);

    /// <summary>The text <see cref="Parse"/> reads back.</summary>
    /// <param name="value">The setting.</param>
    protected abstract string Format(T value);

    /// <inheritdoc />
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    /// <inheritdoc />
    public override bool CanConvertTo(ITypeDescriptorContext? context, Type? destinationType) =>
        destinationType == typeof(string) || base.CanConvertTo(context, destinationType);

    /// <inheritdoc />
    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is not string text)
            return base.ConvertFrom(context, culture, value);
        text = text.Trim();
        return text.Equals(NoneText, StringComparison.OrdinalIgnoreCase) ? null : Parse(text);
    }

    /// <inheritdoc />
    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType)
    {
        if (destinationType == typeof(string))
            return value is T setting ? Format(setting) : NoneText;
        return base.ConvertTo(context, culture, value, destinationType);
    }
}
