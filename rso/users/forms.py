from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from rso.users.models import Role


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class OtpForm(FlaskForm):
    otp = StringField("One-time code", validators=[DataRequired(), Length(min=6, max=8)])


class UserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    full_name = StringField("Full name", validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value) for r in Role])
    office = SelectField("Office", validators=[Optional()])
    state = SelectField("Member State (NCPs)", validators=[Optional()])
    partner = SelectField("Partner organisation (partner accounts)", validators=[Optional()])
    languages = StringField("Languages (ISO 639-3, comma separated)", validators=[Optional(), Length(max=200)])
    password = PasswordField("Initial password", validators=[DataRequired(), Length(min=10, max=200)])


class ConfirmForm(FlaskForm):
    """A bare form: only its CSRF token matters (buttons that change state)."""

    confirm = BooleanField("I confirm", validators=[Optional()])
