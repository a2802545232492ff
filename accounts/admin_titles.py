"""Whole-sentence page titles for the admin.

Django titles its pages "Select %s to change", "Add %s", "Change %s" with the model's name put in
as it is, in the nominative; Russian needs another case there ("Выберите пользователя"). So each
model admin names its pages in whole sentences that translate as such.
"""


class SentenceTitles:
    list_title = add_title = change_title = view_title = None

    @staticmethod
    def _with(title, extra_context):
        return {"title": title, **(extra_context or {})} if title else extra_context

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, self._with(self.list_title, extra_context))

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, self._with(self.add_title, extra_context))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        title = self.change_title if self.has_change_permission(request) else self.view_title
        return super().change_view(request, object_id, form_url, self._with(title, extra_context))
